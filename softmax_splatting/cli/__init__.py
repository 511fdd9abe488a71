"""The command-line tools, one module each; ``pyproject.toml`` installs them as ``softsplat-*`` commands."""
