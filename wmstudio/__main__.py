from wmstudio.cli import main

raise SystemExit(main())
