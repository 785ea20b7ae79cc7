"""Charts of the standings over time: the incidents as known at a position (history),
the steps and bands they make (steps), their Vega-Lite specification (spec), the SVG
it renders to (render), and the words and pages a newsroom embeds (words, pages).
"""
