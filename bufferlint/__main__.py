from bufferlint.cli import entry

entry()
