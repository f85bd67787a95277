import sys

from argus_core.cli.main import main

sys.exit(main())
