"""The mesh CA (Istio's Citadel): roots and their stores, the pure signer, token
authentication (a local issuer or Kubernetes TokenReview), and Istio's CSR API over TLS."""
