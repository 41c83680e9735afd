import sys

from mmedeploy.cli import main

sys.exit(main())
