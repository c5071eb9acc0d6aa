from orders.cli import main

raise SystemExit(main())
