from jaxbeam.cli import main

raise SystemExit(main())
