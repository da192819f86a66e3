/* A small SVG line-chart writer for rtrain-results --plot: one panel per
 * metric stacked vertically, one polyline per series, no dependency. */
#ifndef RTRAIN_TOOLS_SVGPLOT_H
#define RTRAIN_TOOLS_SVGPLOT_H

#include <stdio.h>

typedef struct svg_series {
    const char *label;       /* legend text */
    const double *x, *y;     /* [n]; a non-finite y breaks the line */
    int n;
    int dashed;              /* 1: a dashed line (e.g. a trial stopped early) */
} svg_series;

typedef struct svg_panel {
    const char *title;       /* the metric */
    const char *xlabel;
    const svg_series *series;
    int nseries;
} svg_panel;

/* Writes a complete SVG document; returns 0, or -1 when writing failed. */
int svg_plot_write(FILE *f, const svg_panel *panels, int npanels);

#endif
