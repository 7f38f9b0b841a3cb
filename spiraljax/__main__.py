from spiraljax.cli import main

raise SystemExit(main())
