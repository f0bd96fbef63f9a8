"""The control plane process (Istio's istiod): its parts live in the subpackages."""
