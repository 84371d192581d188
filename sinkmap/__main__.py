import sys

from sinkmap.cli import main

sys.exit(main())
