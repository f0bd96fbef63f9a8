"""The Kubernetes install, rendered purely from one set of values (`mizzen manifest generate`);
applying it is the CLI's job (`mizzen install`)."""
