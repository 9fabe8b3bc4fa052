from dcmcli.cli.app import main

main()
