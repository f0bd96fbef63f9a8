"""The control plane process: what runs in the `mizzen control` pods."""
