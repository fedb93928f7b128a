import sys

from gm_lab.cli import main

sys.exit(main())
