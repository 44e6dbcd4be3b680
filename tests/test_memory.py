import subprocess
import sys


def test_arena_cap_is_set_unless_the_environment_chose():
    code = "from voicebox.memory import cap_malloc_arenas; print(cap_malloc_arenas())"
    env_free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin"})
    assert env_free.stdout.strip() == "True", env_free.stderr
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "MALLOC_ARENA_MAX": "4"})
    assert chosen.stdout.strip() == "False", chosen.stderr
