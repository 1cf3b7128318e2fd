/* LITEMESH_DEBUG compiles resource counters into the speedups; release builds leave it 0. */
#ifndef LM_DEBUG_H
#define LM_DEBUG_H
#ifndef LITEMESH_DEBUG
#define LITEMESH_DEBUG 0
#endif
#endif
