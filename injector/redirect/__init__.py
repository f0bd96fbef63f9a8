"""Traffic redirection: the flags of `mizzen init` (`spec`, pure), the contract between the
injector and the init container. The ruleset they produce is `control.redirect.rules`."""
