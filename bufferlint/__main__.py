from bufferlint.cli import main

main()
