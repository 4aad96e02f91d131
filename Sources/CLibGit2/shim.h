#ifndef PUSHDEPLOY_CLIBGIT2_SHIM_H
#define PUSHDEPLOY_CLIBGIT2_SHIM_H
#include <git2.h>
#endif
