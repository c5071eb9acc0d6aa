from notification.cli import main

raise SystemExit(main())
