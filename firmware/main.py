# Runs at power-on (MicroPython executes main.py after boot.py).
import app

app.main()
