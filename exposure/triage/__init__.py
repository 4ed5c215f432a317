"""What the security team does to an exposure or an event: resolve it, dismiss it, replay its
webhook. One implementation for the console, the API and the CLI, each change written to the
audit log in its own transaction."""
