from medcode.cli import main

main()
