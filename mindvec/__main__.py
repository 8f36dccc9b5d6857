import sys

from mindvec.cli import main

sys.exit(main())
