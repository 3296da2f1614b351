# Sourced by the ci/ scripts: puts the project's Python tools (esptool, pyserial)
# on PATH so tests find them as a user would.
HIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export HIL_ROOT
export PATH="$HIL_ROOT/.venv/bin:$PATH"
