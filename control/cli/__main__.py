import sys

from control.cli.main import main

sys.exit(main())
