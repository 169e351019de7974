import sys

from bridge.daemon.cli import main

sys.exit(main())
