"""The ADS gRPC service: one stream per proxy, State of the World (`sotw`) or Delta (`delta`),
over the snapshot cache's `Watcher` protocol (`stream`)."""
