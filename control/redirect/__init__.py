"""The I/O edge of the traffic redirect: picks the iptables backend and applies, replaces or
removes the mesh's nat rules in the current network namespace (rules come from
`injector.redirect`)."""
