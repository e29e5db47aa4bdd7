"""Project files and weight export."""
