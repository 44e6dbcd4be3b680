import sys

from voicebox.cli import main

sys.exit(main())
