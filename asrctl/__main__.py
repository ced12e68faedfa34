from asrctl.cli import main

main()
