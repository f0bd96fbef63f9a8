"""The singleton duties of the control plane and the Lease that decides who runs them.

Every replica serves xDS, the CA and the webhooks; one, the holder of a `coordination.k8s.io`
Lease, also keeps the root-certificate ConfigMap in every namespace and the webhooks' `caBundle`
current. The election is a pure decision (`lease`) under an asyncio shell (`elector`); the CA's
inputs come through the Protocols of `seams`, so the duties do not depend on how the CA stores
its keys.
"""
