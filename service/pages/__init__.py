"""HTML pages for people: the embeddable chart pages and the front page.

Self-contained: inline CSS and SVG, one small inline script allowed by its hash in a
strict Content-Security-Policy; everything that comes from reports is escaped.
"""
