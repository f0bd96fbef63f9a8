"""Traffic redirection: the flags of `mizzen init` and the iptables ruleset they produce (pure)."""
