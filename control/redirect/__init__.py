"""The traffic redirect `mizzen init` applies in the init container: the iptables ruleset of a
`RedirectSpec` (`rules`, pure), what a netns's nat table already holds (`nat_state`, pure), and the
I/O edge that picks the iptables backend and applies, replaces or removes the rules (`apply`,
`backend`, `runner`). The flags themselves are the injector's contract (`injector.redirect`)."""
