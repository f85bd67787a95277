import sys

from argus_core.cli import main

sys.exit(main())
