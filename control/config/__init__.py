"""What every part reads its input with: the one YAML/JSON loader (`loader`), the one safe file
read (`files`), settings files (`settings`), the mesh's settings (`mesh`), and the agent ↔
control plane contract (`node_metadata`)."""
