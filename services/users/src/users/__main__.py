from users.cli import main

raise SystemExit(main())
