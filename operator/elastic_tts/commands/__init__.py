"""The subcommands of `elastic-tts`, one module each, and their shared flag parsers."""
