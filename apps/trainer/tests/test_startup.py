import subprocess
import sys


def test_app_import_and_config_commands_load_no_torch():
    # a fresh interpreter, as in hlt-core's test_discovery: this process may hold torch already
    script = (
        "import sys\n"
        "sys.argv = ['trainer', '--cfg', 'job']\n"
        "from hlt_trainer.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "model:" in done.stdout
    assert done.stdout.strip().endswith("NO-TORCH")
