"""What the control plane and the agent agree on about telemetry (pure, shared by both): how a
workload's identity travels as one compact string, and Istio's standard metric and label names.
"""
