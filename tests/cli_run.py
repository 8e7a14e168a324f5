"""`minikd <argv>` inside the test process, as a user would see it: (exit status, stdout, stderr)."""

from minikd.machinery.cli import main


def run(argv, capsys):
    """main(argv) -> (exit status, stdout, stderr)."""
    try:
        status = main(argv) or 0
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err
