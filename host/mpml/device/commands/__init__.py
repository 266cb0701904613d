"""The device commands of `mpml`: each module adds its subcommands with `register(sub)` (see mpml.cli)."""
