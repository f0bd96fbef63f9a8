"""mizzen's code that is not the injector or the webhook, arranged by where it runs: the control
plane's process (`plane`), the proxy container's agent (`agent`), the init container's traffic
redirect (`redirect`), and what they share (`api`, `config`, `serving`); `cli` assembles every
process."""
