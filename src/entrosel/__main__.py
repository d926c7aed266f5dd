from entrosel.cli import main

raise SystemExit(main())
