// SPDX-License-Identifier: GPL-2.0
/*
 * Compile-time check of the C structs that driver/kmod/sys/miscdevice.rs declares itself
 * because 6.12's Rust bindings lack them (<linux/miscdevice.h> is not in bindings_helper.h).
 * The numbers here are the ones sys/miscdevice.rs asserts on its `RawMiscDevice`; if the
 * kernel changes the struct, this file stops compiling and the pipeline fails before booting a
 * mismatched module.
 */
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/stddef.h>

static int __init pktmap_layout_init(void)
{
	BUILD_BUG_ON(offsetof(struct miscdevice, minor) != 0);
	BUILD_BUG_ON(offsetof(struct miscdevice, name) != 8);
	BUILD_BUG_ON(offsetof(struct miscdevice, fops) != 16);
	BUILD_BUG_ON(offsetof(struct miscdevice, list) != 24);
	BUILD_BUG_ON(offsetof(struct miscdevice, parent) != 40);
	BUILD_BUG_ON(offsetof(struct miscdevice, this_device) != 48);
	BUILD_BUG_ON(offsetof(struct miscdevice, groups) != 56);
	BUILD_BUG_ON(offsetof(struct miscdevice, nodename) != 64);
	BUILD_BUG_ON(offsetof(struct miscdevice, mode) != 72);
	BUILD_BUG_ON(sizeof(struct miscdevice) != 80);
	BUILD_BUG_ON(sizeof(umode_t) != 2);
	BUILD_BUG_ON(MISC_DYNAMIC_MINOR != 255);
	return 0;
}
module_init(pktmap_layout_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Build-time layout check for pktmap's hand-written C declarations");
