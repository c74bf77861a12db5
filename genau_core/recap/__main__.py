import sys

from genau_core.recap.cli import main

sys.exit(main())
