from sgdtui.cli import main

raise SystemExit(main())
