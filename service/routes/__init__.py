"""HTTP routes: the JSON API (searches, candidates, devices, health) and the HTML pages."""
