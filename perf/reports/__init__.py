"""Everything a run is shown as: console tables, Locust's CSV files, the JSON summary, the HTML report and
its charts, and the admin run page built from the same templates. Reads the engine's statistics
(``perf.load``); the engine never imports from here.
"""
