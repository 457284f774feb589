from pynet.cli import main

raise SystemExit(main())
